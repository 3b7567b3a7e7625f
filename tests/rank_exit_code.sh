#!/bin/bash
# Runs one torchrun rank's command ("$@") and appends "RANK EXIT_CODE" to $RANK_EXIT_CODES, forwarding SIGTERM and
# SIGINT to it: torchrun reports only its own exit status after a signal, this records each rank's.
"$@" &
pid=$!
trap 'kill -TERM $pid' TERM
trap 'kill -INT $pid' INT
wait $pid
code=$?
while kill -0 $pid 2>/dev/null; do   # `wait` returned early for a trapped signal: wait for the rank itself
    wait $pid
    code=$?
done
echo "$RANK $code" >> "$RANK_EXIT_CODES"
exit $code
