/*
 * hrw-idle: the lab's tiny stand-in for long-running daemons, and the init of a lab host.
 *
 * The lab must show real agent and worker processes (python main.py ..., ruby omsagent ...)
 * on up to 200 hosts without running 800 Python or Ruby interpreters. This program costs a
 * few hundred kilobytes and no CPU:
 *
 *   hrw-idle --as ARGV0 ARG...   re-executes itself with argv = [ARGV0, ARG...], so that
 *                                /proc/PID/cmdline (and ps) show exactly "ARGV0 ARG...";
 *                                the process name (comm) is set to basename(ARGV0).
 *   hrw-idle --init              reaps children forever (PID 1 of a host's pid namespace).
 *   hrw-idle ...                 anything else: sleep until a signal ends it.
 *
 * /proc/PID/exe still points at this binary; only the command line is the real one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { _exit(128 + sig); }

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--as") == 0) {
        execv("/proc/self/exe", &argv[2]);
        perror("hrw-idle: execv /proc/self/exe");
        return 127;
    }
    if (argc >= 2 && strcmp(argv[1], "--init") == 0) {
        /* PID 1 ignores signals without a handler; install one so SIGTERM still ends it. */
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        for (;;) {
            if (wait(NULL) < 0 && errno == ECHILD)
                pause();
        }
    }
    const char *base = strrchr(argv[0], '/');
    prctl(PR_SET_NAME, base ? base + 1 : argv[0], 0, 0, 0);
    for (;;)
        pause();
}
