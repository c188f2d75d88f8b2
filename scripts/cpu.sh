# Sourced by the bench scripts: where a run's CPU time went. Needs $work (a scratch directory).
#
#   with_cpu "LABEL=PID[,PID..] ..." COMMAND...
#       runs COMMAND (its output as it is), then prints one line starting "CPU": the CPU
#       seconds (user + system) each LABEL's processes used meanwhile, COMMAND's own (load),
#       and how busy the machine's cores were

# User + system clock ticks the processes have used so far (a process gone counts 0).
cpu_ticks() { # pid...
  local total=0 p t
  for p in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

# Busy and all clock ticks of the whole machine so far.
machine_ticks() { awk '/^cpu / {busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6}' /proc/stat; }

with_cpu() { # "label=pid,pid ..." command...
  local groups=$1; shift
  local hz g i labels=() lists=() before=() busy0 all0 busy1 all1 start line
  hz=$(getconf CLK_TCK)
  for g in $groups; do labels+=("${g%%=*}"); lists+=("${g#*=}"); done
  for i in "${!lists[@]}"; do before+=("$(cpu_ticks ${lists[$i]//,/ })"); done
  read -r busy0 all0 < <(machine_ticks)
  start=$(date +%s.%N)
  # The second line of `times` in the subshell: what its child, the command, used.
  ( "$@"; times >"$work/cpu.times" )
  read -r busy1 all1 < <(machine_ticks)
  line="CPU over $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}') s:"
  for i in "${!lists[@]}"; do
    line+=" ${labels[$i]} $(awk -v a="${before[$i]}" -v b="$(cpu_ticks ${lists[$i]//,/ })" \
      -v hz="$hz" 'BEGIN {printf "%.1f", (b - a) / hz}') s,"
  done
  line+=" load $(tail -1 "$work/cpu.times" | awk '{
    n = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); n += p[1] * 60 + p[2] }
    printf "%.1f", n }') s,"
  echo "$line cores busy $(awk -v b="$((busy1 - busy0))" -v a="$((all1 - all0))" \
    'BEGIN {printf "%.0f%%", a ? 100 * b / a : 0}') of $(nproc)"
}
