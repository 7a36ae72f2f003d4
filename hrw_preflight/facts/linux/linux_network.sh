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
probe() {
  if [ -n "$proxy" ] && [ -n "$HRW_PROXY_USER" ]; then
    timeout "$t" openssl s_client -connect "$1:443" -servername "$1" -showcerts $noca \
      -proxy "$proxy" -proxy_user "$HRW_PROXY_USER" -proxy_pass env:HRW_PROXY_PASS </dev/null
  elif [ -n "$proxy" ]; then
    timeout "$t" openssl s_client -connect "$1:443" -servername "$1" -showcerts $noca \
      -proxy "$proxy" </dev/null
  else
    timeout "$t" openssl s_client -connect "$1:443" -servername "$1" -showcerts $noca </dev/null
  fi
  echo "@@RC $?"
}
for host in "$@"; do
  # awk reads the output buffered (sh's read takes it a byte at a time); the host name
  # reaches awk through the environment, so no character in it is ever interpreted.
  probe "$host" 2>&1 | HRW_HOST="$host" awk '{ print ENVIRON["HRW_HOST"] "|" $0; fflush() }' &
done
wait
