#!/usr/bin/env bash
# host-check.sh OUT: the fetch scenario's checks that only the host can make, from the
# HTTP server's per-boot logs (run by boot/run-scenario.sh after the boots; BOOTS is the
# number of boots that ran). Prints "PASS name" or "FAIL name: reason".
out=$1
log1=$out/http.log log2=$out/http.boot2.log
# Request lines: 'DATE "GET /path HTTP/1.1" STATUS SIZE'
reqs() { grep -oE '"[A-Z]+ [^ ]+ HTTP/[0-9.]+" [0-9]+' "$1" 2>/dev/null | sed -E 's/^"([A-Z]+) ([^ ]+) [^"]*" ([0-9]+)$/\1 \2 \3/' | sort -u; }

got=$(reqs "$log1" | tr '\n' ',')
want="GET /SHA256SUMS 200,GET /notes-1.0-x86-64.raw 200,GET /versioned-1.10.0-x86-64.raw 200,"
if [[ $got == "$want" ]]; then
  echo "PASS fetched-in-initrd"
else
  echo "FAIL fetched-in-initrd: the server saw in boot 1: '${got:-no request}', want exactly '$want'"
fi

if ((${BOOTS:-0} < 2)); then
  echo "FAIL second-boot-no-fetch: boot 2 did not run"
elif [[ -s $log2 ]]; then
  echo "FAIL second-boot-no-fetch: the server saw requests during boot 2: $(reqs "$log2" | tr '\n' ',')"
else
  echo "PASS second-boot-no-fetch"
fi
