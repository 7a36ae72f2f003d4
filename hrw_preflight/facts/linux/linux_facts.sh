# hrw-preflight: Linux facts probe. Reads files and the process table; writes nothing.
# Arguments: the run's boundary, then the most bytes of omsconfig.log to scan.
# Output: one section per fact, parsed by hrw_preflight/facts/linux/probe.py:
#   <boundary> BEGIN <name>
#   base64 of: what the section's command printed, a newline, and its status
#   <boundary> END <name>
# Every body is base64, so nothing a host account can write into a file or a process's
# arguments becomes a line of the output, and the boundary is new for every run.
LC_ALL=C
export LC_ALL
b="$1"
max_log_bytes="$2"
for tool in base64 readlink; do
  command -v "$tool" >/dev/null 2>&1 || { echo "hrw-facts: $tool is not installed" >&2; exit 3; }
done

# Prints the file $1$2, then a newline and a status: 0, missing, denied, symlink, notfile,
# or the exit status of head. $1 is the folder the file is read from as the agent lays it out
# (links above it are the agent's own, e.g. state -> <workspace>/state, made by root); $2 is
# the path below it, where no link is followed: a worker account owns folders there and
# could point a link at a key. The open file itself is checked (/proc/self/fd), not its
# name, so a link swapped in between the check and the read is caught too.
hrw_read() {
  f="$1$2"
  if [ -L "$f" ]; then printf '\nsymlink'; return; fi
  if [ ! -e "$f" ]; then printf '\nmissing'; return; fi
  if [ ! -f "$f" ]; then printf '\nnotfile'; return; fi
  if [ ! -r "$f" ]; then printf '\ndenied'; return; fi
  {
    if [ "$(readlink /proc/self/fd/4)" != "$(readlink -f -- "$1")$2" ]; then
      printf '\nsymlink'
      return
    fi
    head -c 262144 <&4
    printf '\n%s' "$?"
  } 4<"$f" 2>/dev/null || printf '\ndenied'
}
hrw_file() {
  case "$1$2" in *'
'*) return ;; esac
  printf '%s BEGIN file:%s\n' "$b" "$1$2"
  hrw_read "$1" "$2" | base64
  printf '%s END file:%s\n' "$b" "$1$2"
}
# Runs the rest of the arguments as one section named $1: their output and status, encoded.
hrw_section() {
  name="$1"
  shift
  printf '%s BEGIN %s\n' "$b" "$name"
  { "$@" 2>&1; printf '\n%s' "$?"; } | base64
  printf '%s END %s\n' "$b" "$name"
}

etc=/etc/opt/microsoft/omsagent
var=/var/opt/microsoft/omsagent
aw=state/automationworker
hrw_file "$etc/conf" /omsadmin.conf
for f in "$etc"/*/conf/omsadmin.conf; do
  [ -e "$f" ] && hrw_file "${f%/omsadmin.conf}" /omsadmin.conf
done
hrw_file "$etc" /proxy.conf
hrw_file "$etc/conf" /proxy.conf
hrw_file "$var/$aw" /oms.conf
hrw_file "$var/$aw" /worker.conf
for f in "$var"/*/$aw/diy/worker.conf; do
  [ -e "$f" ] || [ -L "$f" ] && hrw_file "${f%/diy/worker.conf}" /diy/worker.conf
done
[ -e /home/nxautomation/state/worker.conf ] || [ -L /home/nxautomation/state/worker.conf ] &&
  hrw_file /home/nxautomation /state/worker.conf
hrw_file /opt/microsoft/omsconfig /modules/nxOMSAutomationWorker/VERSION
# HRW-L04 (Microsoft's DSC health test): the DSC configuration, which the agent may write in
# UTF-16-LE (the base64 body carries any bytes; it is decoded on the controller), and the
# agent's public certificate, never its key.
hrw_file /etc/opt/omi/conf/omsconfig/configuration /Current.mof
hrw_file "$etc/certs" /oms.crt
hrw_file /proc /meminfo
hrw_file /proc /loadavg

# The agent keeps one folder per workspace under $var, named by the workspace id (32+
# characters); more than one means the agent reports to more than one workspace.
hrw_workspaces() {
  for d in "$var"/*; do
    n="${d##*/}"
    [ -d "$d" ] && [ "${#n}" -ge 32 ] && printf '%s\n' "$n"
  done
  return 0
}
hrw_section workspaces hrw_workspaces
hrw_section nproc nproc
hrw_section users getent passwd nxautomation omsagent

# The probe's own shell (and sudo above it) carry this script in their arguments: skip them.
hrw_ps() {
  ps -ww -eo pid=,uid=,user:32=,args= \
    | awk -v self="$$" -v parent="$PPID" -v b="$b" \
        '$1 != self && $1 != parent && !index($0, b) && /automation[w]orker|oms[a]gent|hybrid[w]orker/'
}
hrw_section ps hrw_ps

log=/var/opt/microsoft/omsconfig/omsconfig.log
hrw_log() {
  if [ ! -e "$log" ]; then
    echo "state=missing"
  elif [ ! -r "$log" ]; then
    echo "state=denied"
  else
    # Only the last $max_log_bytes are read (tail seeks; wc -c on a file reads its size), and
    # only matching lines come back. NUL bytes (a log with a hole after a crash) are dropped
    # so that grep prints matching lines instead of "Binary file matches".
    echo "size=$(wc -c < "$log")"
    tail -c "$max_log_bytes" -- "$log" | tr -d '\000' \
      | grep -F -m 20 -e 'The specified class does not exist'
    echo "grep_rc=$?"
  fi
}
hrw_section omsconfig_log hrw_log

hrw_tools() {
  # No $(...) here: each would fork a subshell; command -v prints the path and a newline.
  for tool in python3 python2 python openssl sudo curl; do
    printf '%s=' "$tool"
    command -v "$tool" 2>/dev/null || echo
  done
}
hrw_section tools hrw_tools
hrw_section clock date -u +%s
