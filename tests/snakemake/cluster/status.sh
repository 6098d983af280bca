#!/bin/sh
# The status command that goes with submit.sh: running, success or failed, as Snakemake asks.
jobdir="$1"
if [ ! -f "$jobdir/exitcode" ]; then
    echo running
elif [ "$(cat "$jobdir/exitcode")" = 0 ]; then
    echo success
else
    echo failed
fi
