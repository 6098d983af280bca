#!/bin/sh
# A stand-in for a batch scheduler's submit command (sbatch, qsub) for
# snakemake-executor-plugin-cluster-generic: runs the jobscript in a directory of its own, in
# the background, and prints the job id (that directory) the way sbatch --parsable does.
# Jobs share nothing with the main process but the environment, as on a cluster without a
# shared file system.
set -eu
jobscript="$1"
jobdir=$(mktemp -d "${CLUSTER_JOBS_DIR:?}/job.XXXXXX")
cp "$jobscript" "$jobdir/jobscript.sh"
(
    cd "$jobdir"
    if JOB_DIR="$jobdir" sh jobscript.sh >"$jobdir/job.log" 2>&1; then code=0; else code=$?; fi
    echo "$code" >"$jobdir/exitcode.part"
    mv "$jobdir/exitcode.part" "$jobdir/exitcode"
) </dev/null >/dev/null 2>&1 &
echo "$jobdir"
