# Sourced by checks.sh (its helpers: result, wait_for, domain_gone, prefixed, up, $NODE, $X).
# ---- 3. xenpv's console daemon (dom0, xen platform) carries a Linux PV domU's hvc0 ---------
# `xenpv consoled` (ConsoleDaemon: console 0 mapped through the reserved grant
# GNTTAB_RESERVED_CONSOLE, bound to console/port) replaces Xen's xenconsoled for this check:
# for a PV guest libxl always writes console/type = "xenconsoled", xenconsoled serves every
# domain of that type as soon as it is introduced, and only one dom0 process can bind the
# guest's console port. So xenconsoled is stopped first and started again afterwards.
# `xenpv console` (the real CLI, stdin a fifo, not a terminal) reads the boot, types a line the
# domU's init answers with its sha256, and ends when the domain goes; our log file must hold
# the same bytes the CLI printed.
XENCONSOLED_ARGS="--pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console"

stop_xenconsoled() {
  local pid; pid=$(cat /run/xenconsoled.pid 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  wait_for 20 sh -c "! kill -0 $pid 2>/dev/null"
}
start_xenconsoled() {
  /usr/lib/xen-4.17/bin/xenconsoled $XENCONSOLED_ARGS
}

check_console() {
  local name=domu-con s domid word want rc
  local logdir=/var/log/xenpv/console out=/tmp/con.out fifo=/tmp/con.in
  local log=$logdir/guest-$name.log
  rm -f "$log" "$out" "$fifo" /tmp/consoled.log /tmp/con.err
  s=$(up)
  if ! stop_xenconsoled; then result console-daemon-started FAIL "$s" "xenconsoled did not stop"; return; fi
  # Loading the CLI under TCG takes 13-43 s (it loads every command): generous waits below.
  $NODE $X/bin/xenpv.js consoled -F --log-dir "$logdir" >/tmp/consoled.log 2>&1 &
  local cpid=$!
  if ! wait_for 180 grep -q 'attach socket' /tmp/consoled.log; then
    result console-daemon-started FAIL "$s" "xenpv consoled did not come up"; prefixed consoled /tmp/consoled.log 30
    console_cleanup "$cpid" ""; return
  fi
  result console-daemon-started PASS "$s" "$(head -1 /tmp/consoled.log) (Xen's xenconsoled stopped)"
  s=$(up)
  if ! xl -v create -p /etc/xen/$name.cfg >/tmp/xl-create.log 2>&1; then
    result console-boot-output FAIL "$s" "xl create failed"
    prefixed xl /tmp/xl-create.log 60; xl dmesg | tail -15 | sed 's/^/xl-dmesg| /'; prefixed consoled /tmp/consoled.log 30
    console_cleanup "$cpid" ""; return
  fi
  domid=$(xl domid $name)
  echo "REALXEN-INFO console keys of dom$domid: $(xenstore-ls -f /local/domain/$domid/console | tr '\n' ' ')"
  mkfifo "$fifo"
  $NODE $X/bin/xenpv.js console $name <"$fifo" >"$out" 2>/tmp/con.err &
  local vpid=$!
  exec 7>"$fifo"
  xl unpause $name
  if ! wait_for 300 grep -q 'DOMU-CONSOLE-ASK' "$out"; then
    result console-boot-output FAIL "$s" "no DOMU-CONSOLE-ASK through xenpv console in 300 s"
    prefixed domU "$out" 40; prefixed console-err /tmp/con.err; prefixed consoled /tmp/consoled.log 30
    exec 7>&-; console_cleanup "$cpid" "$vpid"; return
  fi
  if grep -q 'Linux version 6\.' "$out" && grep -q 'DOMU-CONSOLE-INIT' "$out"; then
    result console-boot-output PASS "$s" "xenpv console printed the kernel's boot ($(grep -c . "$out") lines, '$(grep -m1 -o 'Linux version [^ ]*' "$out")') and the init's output"
    { head -2 "$out"; grep 'DOMU-CONSOLE' "$out"; } | tr -d '\r' | cut -c1-160 | sed 's/^/domU| /'
  else
    result console-boot-output FAIL "$s" "boot messages or DOMU-CONSOLE-INIT missing from xenpv console's output"; prefixed domU "$out" 40
  fi
  s=$(up)
  word="typed-into-xenpv-console-$RANDOM$RANDOM"
  want=$(printf %s "$word" | sha256sum | cut -d' ' -f1)
  echo "$word" >&7
  exec 7>&-
  if wait_for 120 grep -q "DOMU-CONSOLE-ANSWER $want" "$out"; then
    result console-input PASS "$s" "typed '$word' into xenpv console; the domU read it from hvc0 and answered its sha256 ${want:0:16}..."
  else
    result console-input FAIL "$s" "no DOMU-CONSOLE-ANSWER $want"; prefixed domU "$out" 20
  fi
  s=$(up)
  if wait_for 120 sh -c "! kill -0 $vpid 2>/dev/null"; then
    wait "$vpid"; rc=$?
    if [ "$rc" = 0 ] && domain_gone $name; then
      result console-cli-ends PASS "$s" "the domU powered off, xenpv console ended (exit 0)"
    else
      result console-cli-ends FAIL "$s" "xenpv console exit $rc, domain $(domain_gone $name && echo gone || echo present)"; prefixed console-err /tmp/con.err
    fi
  else
    result console-cli-ends FAIL "$s" "xenpv console still running 120 s after the answer"; prefixed domU "$out" 10
  fi
  s=$(up)
  # The log is closed when the console goes, a moment after the stream's end.
  if wait_for 10 cmp -s "$out" "$log"; then
    result console-log-file PASS "$s" "$log: the same $(wc -c <"$log") bytes xenpv console printed"
  else
    result console-log-file FAIL "$s" "$log differs from xenpv console's output ($(wc -c <"$log" 2>/dev/null || echo no) vs $(wc -c <"$out") bytes): $(cmp "$out" "$log" 2>&1 | head -1)"
  fi
  prefixed consoled /tmp/consoled.log 10
  console_cleanup "$cpid" "$vpid"
}

# Destroy the domain if left, stop our daemon and the CLI, give the host back to xenconsoled.
console_cleanup() { # consoled-pid cli-pid
  domain_gone domu-con || xl destroy domu-con
  [ -n "$2" ] && kill -TERM "$2" 2>/dev/null
  kill -TERM "$1" 2>/dev/null
  wait_for 20 sh -c "! kill -0 $1 2>/dev/null" || kill -KILL "$1"
  start_xenconsoled
}
