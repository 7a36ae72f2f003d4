# hrw-preflight: Linux connectivity and TLS probe. Arguments: timeout, proxy (host:port or
# empty), proxy-credentials source (a proxy.conf path, or empty), then endpoint host names.
# Each endpoint is probed in parallel; every output line is prefixed "<host>|" so that the
# interleaved lines can be told apart (one short line per write stays atomic on a pipe).
LC_ALL=C
export LC_ALL
t="$1"; proxy="$2"; creds="$3"
shift 3
if ! command -v openssl >/dev/null 2>&1; then
  echo "@@HRW-NO-OPENSSL"
  exit 0
fi
# The chain is judged on the controller, so s_client need not load the host's CA bundle:
# OpenSSL 3 parses the whole bundle for each connection, most of each probe's CPU time.
# The flags exist from 1.1.0 (-no-CAfile, -no-CApath) and 3.0 (-no-CAstore).
case "$(openssl version 2>/dev/null)" in
  "OpenSSL 1.1"*) noca="-no-CAfile -no-CApath" ;;
  "OpenSSL "[3-9]*) noca="-no-CAfile -no-CApath -no-CAstore" ;;
  *) noca="" ;;
esac
if [ -n "$creds" ] && [ -r "$creds" ]; then
  # As the agent reads it: an optional http:// or https://, then user (no ':') ':' password
  # (no '@') '@' host[:port]. The controller has checked the line; here the credentials are
  # only cut out of it, by shell expansions (no command sees them as an argument).
  HRW_PROXY_LINE=$(head -n 1 "$creds")
  HRW_PROXY_LINE=${HRW_PROXY_LINE#http://}
  HRW_PROXY_LINE=${HRW_PROXY_LINE#https://}
  case "$HRW_PROXY_LINE" in
    *@*)
      HRW_PROXY_AUTH=${HRW_PROXY_LINE%@*}
      HRW_PROXY_USER=${HRW_PROXY_AUTH%%:*}
      HRW_PROXY_PASS=${HRW_PROXY_AUTH#*:}
      ;;
  esac
  unset HRW_PROXY_LINE HRW_PROXY_AUTH
  export HRW_PROXY_PASS
fi
# What s_client can do through a proxy by itself: -proxy from 1.1.0, -proxy_user and
# -proxy_pass from 3.0. Where it cannot (RHEL 7's 1.0.2, 1.1.1 behind an authenticating
# proxy), the host's python opens the CONNECT tunnel, with the proxy's credentials, and hands
# s_client a local end of it: s_client still does the TLS handshake and prints the chain.
case "$(openssl version 2>/dev/null)" in
  "OpenSSL 1.1"*) native_proxy=open ;;
  "OpenSSL "[3-9]*) native_proxy=auth ;;
  *) native_proxy=none ;;
esac
tunnel_py=""
for py in python3 python2 python; do
  if command -v "$py" >/dev/null 2>&1; then tunnel_py="$py"; break; fi
done
# The tunnel, for python 2.6 to 3.x. argv: proxy host:port, endpoint, timeout, s_client's
# extra flags; the credentials come from the environment, never from the command line.
# It prints "@@TUNNEL ok|proxy-refused|unreachable|timeout <what the proxy said>" and then
# what s_client prints, and exits with s_client's status.
tunnel_code='
import base64, os, select, socket, subprocess, sys
proxy, host, limit, extra = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
def say(text):
    sys.stdout.write("@@TUNNEL " + text + "\n")
    sys.stdout.flush()
addr, _, port = proxy.rpartition(":")
try:
    up = socket.create_connection((addr, int(port)), limit)
except socket.timeout:
    say("timeout connecting to the proxy " + proxy)
    sys.exit(1)
except (socket.error, ValueError):
    say("unreachable proxy " + proxy + ": " + str(sys.exc_info()[1]))
    sys.exit(1)
request = "CONNECT " + host + ":443 HTTP/1.1\r\nHost: " + host + ":443\r\n"
user = os.environ.get("HRW_PROXY_USER", "")
if user:
    pair = (user + ":" + os.environ.get("HRW_PROXY_PASS", "")).encode("utf-8")
    request += "Proxy-Authorization: Basic " + base64.b64encode(pair).decode("ascii") + "\r\n"
try:
    up.sendall((request + "\r\n").encode("latin-1"))
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 16384:
        chunk = up.recv(4096)
        if not chunk:
            break
        head += chunk
except socket.timeout:
    say("timeout waiting for the proxy " + proxy + " to answer CONNECT")
    sys.exit(1)
except socket.error:
    say("proxy-refused the proxy " + proxy + " closed the connection: " + str(sys.exc_info()[1]))
    sys.exit(1)
status = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
if status.split(" ")[1:2] != ["200"] or b"\r\n\r\n" not in head:
    say("proxy-refused the proxy " + proxy + " answered CONNECT with: " + (status or "nothing"))
    sys.exit(1)
say("ok " + status)
early = head.split(b"\r\n\r\n", 1)[1]
local = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
local.bind(("127.0.0.1", 0))
local.listen(1)
local.settimeout(limit)
argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % local.getsockname()[1],
        "-servername", host, "-showcerts"] + extra
child = subprocess.Popen(argv, stdin=open(os.devnull), stderr=subprocess.STDOUT)
try:
    conn = local.accept()[0]
except socket.timeout:
    child.kill()
    sys.exit(child.wait() or 1)
conn.setblocking(True)
up.setblocking(True)
if early:
    conn.sendall(early)
ends = [conn, up]
while ends:
    ready = select.select(ends, [], [], limit)[0]
    if not ready:
        break
    for end in ready:
        other = up if end is conn else conn
        try:
            data = end.recv(65536)
        except socket.error:
            data = b""
        if data:
            other.sendall(data)
        else:
            ends = []
            break
conn.close()
up.close()
sys.exit(child.wait())
'
probe() {
  proxy="$2"  # runs in the pipeline's subshell: the global is left as it was
  if [ -z "$proxy" ]; then
    timeout "$t" openssl s_client -connect "$1:443" -servername "$1" -showcerts $noca </dev/null
  elif [ -n "$HRW_PROXY_USER" ] && [ "$native_proxy" = auth ]; then
    timeout "$t" openssl s_client -connect "$1:443" -servername "$1" -showcerts $noca \
      -proxy "$proxy" -proxy_user "$HRW_PROXY_USER" -proxy_pass env:HRW_PROXY_PASS </dev/null
  elif [ -z "$HRW_PROXY_USER" ] && [ "$native_proxy" != none ]; then
    timeout "$t" openssl s_client -connect "$1:443" -servername "$1" -showcerts $noca \
      -proxy "$proxy" </dev/null
  elif [ -n "$tunnel_py" ]; then
    HRW_PROXY_USER="$HRW_PROXY_USER" timeout "$t" "$tunnel_py" -c "$tunnel_code" \
      "$proxy" "$1" "$t" $noca </dev/null
  else
    echo "@@TUNNEL error $(openssl version 2>&1 | head -n 1) cannot go through a proxy by" \
      "itself (s_client -proxy needs OpenSSL 1.1.0, proxy credentials 3.0) and no python is" \
      "installed to open the CONNECT tunnel"
    false
  fi
  echo "@@RC $?"
}
for arg in "$@"; do
  case "$arg" in
    =*) host=${arg#=}; via="" ;;
    *) host=$arg; via=$proxy ;;
  esac
  # awk reads the output buffered (sh's read takes it a byte at a time); the host name
  # reaches awk through the environment, so no character in it is ever interpreted.
  probe "$host" "$via" 2>&1 | HRW_HOST="$host" awk '{ print ENVIRON["HRW_HOST"] "|" $0; fflush() }' &
done
wait
