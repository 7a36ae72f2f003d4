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
# Kept: the agent-based worker's processes, every process of hweautomation (the
# extension-based worker's user; its command line is not published, so only the owner
# counts) and the Arc agent's himds.
hrw_ps() {
  ps -ww -eo pid=,uid=,user:32=,args= \
    | awk -v self="$$" -v parent="$PPID" -v b="$b" \
        '$1 != self && $1 != parent && !index($0, b) &&
         (/automation[w]orker|oms[a]gent|hybrid[w]orker|himd[s]/ || $3 == "hweautomation")'
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

# The extension-based (V2) worker. The guest agent keeps each extension in
# /var/lib/waagent/<handler>-<version>/ (config/HandlerState, mrseq, config/<seq>.settings,
# status/<seq>.status); Arc-enabled servers use the same path. A handler folder that is a
# link is not read; of the others the newest version (sort -V) is. Its files are read with
# hrw_file from the folder down, so no link below it is followed either. The newest <seq> is
# mrseq's, else the highest config/<seq>.settings.
handler=Microsoft.Azure.Automation.HybridWorker.HybridWorkerForLinux
wa=/var/lib/waagent
hrw_handler_dirs() {
  for d in "$wa/$handler"-*; do
    [ -d "$d" ] && [ ! -L "$d" ] && echo "$d"
  done
}
hrw_ext_dir=""
hrw_ext_seq=""
hrw_ext_src=""
if [ -r "$wa" ] && [ -x "$wa" ]; then
  hrw_ext_dir=$(hrw_handler_dirs | sort -V | tail -n 1)
fi
case "$hrw_ext_dir" in *'
'*) hrw_ext_dir="" ;; esac
if [ -n "$hrw_ext_dir" ]; then
  if [ -f "$hrw_ext_dir/mrseq" ] && [ ! -L "$hrw_ext_dir/mrseq" ] && [ -r "$hrw_ext_dir/mrseq" ]
  then
    hrw_ext_seq=$(head -c 32 "$hrw_ext_dir/mrseq" | tr -cd '0-9')
    [ -n "$hrw_ext_seq" ] && hrw_ext_src=mrseq
  fi
  if [ -z "$hrw_ext_seq" ] && [ -d "$hrw_ext_dir/config" ] && [ ! -L "$hrw_ext_dir/config" ]; then
    hrw_ext_seq=$(for f in "$hrw_ext_dir"/config/*.settings; do
      f=${f##*/}; echo "${f%.settings}"; done | grep -E '^[0-9]+$' | sort -n | tail -n 1)
    [ -n "$hrw_ext_seq" ] && hrw_ext_src=settings
  fi
fi
hrw_ext_scan() {
  if [ ! -e "$wa" ]; then
    echo "waagent=missing"
  elif [ ! -r "$wa" ] || [ ! -x "$wa" ]; then
    echo "waagent=denied"
  else
    echo "waagent=ok"
    hrw_handler_dirs | sed 's/^/dir=/'
  fi
  [ -n "$hrw_ext_dir" ] && echo "newest=$hrw_ext_dir"
  [ -n "$hrw_ext_seq" ] && echo "seq=$hrw_ext_seq" && echo "seq_source=$hrw_ext_src"
  if [ -d /opt/azcmagent ]; then echo "azcmagent=dir"; else echo "azcmagent=missing"; fi
  # Remnants are only looked for (never read: worker_diy.key is a private key).
  for f in /home/nxautomation/state/worker.conf /home/nxautomation/state/worker_diy.crt \
    /home/nxautomation/state/worker_diy.key; do
    if [ -e "$f" ] || [ -L "$f" ]; then echo "remnant_agent=$f"; fi
  done
  if [ -e /home/hweautomation/state ]; then echo "remnant_extension=/home/hweautomation/state"; fi
  for d in $(hrw_handler_dirs); do
    if [ -e "$d/mrseq" ]; then echo "remnant_extension=$d/mrseq"; fi
  done
  return 0
}
hrw_section ext_scan hrw_ext_scan
if [ -n "$hrw_ext_dir" ]; then
  hrw_file "$hrw_ext_dir" /config/HandlerState
  if [ -n "$hrw_ext_seq" ]; then
    hrw_file "$hrw_ext_dir" "/config/$hrw_ext_seq.settings"
    hrw_file "$hrw_ext_dir" "/status/$hrw_ext_seq.status"
  fi
fi

# What systemd says of hwd (its unit's contents and command line are not published, so
# only its load, active and enabled states are asked).
hrw_hwd() {
  if ! command -v systemctl >/dev/null 2>&1; then echo "systemctl=missing"; return 0; fi
  printf 'load='; systemctl show -p LoadState --value hwd 2>&1 | head -n 1
  printf 'active='; systemctl is-active hwd 2>&1 | head -n 1
  printf 'enabled='; systemctl is-enabled hwd 2>&1 | head -n 1
  return 0
}
hrw_section hwd hrw_hwd
hrw_section hwe_user getent passwd hweautomation

# The identity endpoints. Only the HTTP status, the Www-Authenticate header, the endpoint's
# error text and whether the body held an access_token field are printed: awk reads the body
# here on the host and drops it, so a token never leaves the host. No proxy is ever used.
hrw_ask() {
  command -v curl >/dev/null 2>&1 || { echo "nocurl"; return 0; }
  env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
    curl -sS --noproxy '*' --connect-timeout 2 -m 4 -D - -H 'Metadata: true' "$1" 2>&1 \
    | awk '
      BEGIN { head = 1; tok = 0 }
      head && /^curl: / { sub(/\r$/, ""); print substr($0, 1, 300); next }
      head && /^HTTP\// { st = $2; next }
      head && tolower($0) ~ /^www-authenticate:/ {
        sub(/\r$/, ""); ch = substr($0, index($0, ":") + 1); sub(/^ */, "", ch); next }
      head && /^\r?$/ { head = 0; next }
      !head { if (index($0, "\"access_token\"")) tok = 1; if (length(body) < 4096) body = body $0 }
      END {
        print "status=" st
        print "token=" tok
        if (ch != "") print "challenge=" substr(ch, 1, 300)
        if (!tok && match(body, /"error_description" *: *"[^"]*"/))
          print "error=" substr(body, RSTART, RLENGTH > 300 ? 300 : RLENGTH)
        else if (!tok && match(body, /"error" *: *"[^"]*"/))
          print "error=" substr(body, RSTART, RLENGTH > 300 ? 300 : RLENGTH)
      }'
  return 0
}
hrw_section imds hrw_ask \
  'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/'
if [ -d /opt/azcmagent ]; then
  hrw_section arc_identity hrw_ask \
    'http://localhost:40342/metadata/identity/oauth2/token?api-version=2020-06-01&resource=https://management.azure.com/'
fi
hrw_section clock date -u +%s
