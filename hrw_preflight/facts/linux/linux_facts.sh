# hrw-preflight: Linux facts probe. Reads files and the process table; writes nothing.
# Output: sections between marker lines, parsed by hrw_preflight/facts/linux/probe.py.
LC_ALL=C
export LC_ALL
max_log_bytes="$1"
hrw_file() {
  printf '@@HRW-FILE %s\n' "$1"
  if [ ! -e "$1" ]; then
    rc=missing
  elif [ ! -r "$1" ]; then
    rc=denied
  else
    head -c 262144 -- "$1" 2>&1
    rc=$?
  fi
  printf '\n@@HRW-FILE-END %s rc=%s\n' "$1" "$rc"
}
hrw_file /etc/opt/microsoft/omsagent/conf/omsadmin.conf
for f in /etc/opt/microsoft/omsagent/*/conf/omsadmin.conf; do
  [ -e "$f" ] && hrw_file "$f"
done
hrw_file /etc/opt/microsoft/omsagent/proxy.conf
hrw_file /etc/opt/microsoft/omsagent/conf/proxy.conf
hrw_file /var/opt/microsoft/omsagent/state/automationworker/oms.conf
hrw_file /var/opt/microsoft/omsagent/state/automationworker/worker.conf
for f in /var/opt/microsoft/omsagent/*/state/automationworker/diy/worker.conf \
         /home/nxautomation/state/worker.conf; do
  [ -e "$f" ] && hrw_file "$f"
done
hrw_file /opt/microsoft/omsconfig/modules/nxOMSAutomationWorker/VERSION
hrw_file /proc/meminfo
hrw_file /proc/loadavg

printf '@@HRW-BEGIN nproc\n'
nproc 2>&1
printf '@@HRW-END nproc rc=%s\n' "$?"

printf '@@HRW-BEGIN users\n'
getent passwd nxautomation 2>&1
printf '@@HRW-END users rc=%s\n' "$?"

# The probe's own shell (and sudo above it) carry this script in their arguments: skip them.
printf '@@HRW-BEGIN ps\n'
ps -ww -eo pid=,uid=,user:32=,args= 2>&1 \
  | awk -v self="$$" -v parent="$PPID" \
      '$1 != self && $1 != parent && !/@@HRW/ && /automation[w]orker|oms[a]gent|hybrid[w]orker/'
printf '@@HRW-END ps rc=%s\n' "$?"

log=/var/opt/microsoft/omsconfig/omsconfig.log
printf '@@HRW-BEGIN omsconfig_log\n'
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
printf '@@HRW-END omsconfig_log rc=0\n'

printf '@@HRW-BEGIN tools\n'
# No $(...) here: each would fork a subshell; command -v prints the path and a newline.
for tool in python3 python2 python openssl sudo curl; do
  printf '%s=' "$tool"
  command -v "$tool" 2>/dev/null || echo
done
printf '@@HRW-END tools rc=0\n'

printf '@@HRW-BEGIN clock\n'
date -u +%s
printf '@@HRW-END clock rc=%s\n' "$?"
