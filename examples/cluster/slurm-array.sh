#!/usr/bin/env bash
# A parasweep sweep as a Slurm job array: each array task evaluates one shard and writes its part of one
# Hive-partitioned Parquet dataset on a shared file system; a last job, started when every task has succeeded,
# answers the cross-shard top-K with DuckDB (docs/sharding.md).
#
#   sbatch --export=ALL,OUT=/shared/sweeps/405b examples/cluster/slurm-array.sh
#
# Submitted from a checkout of this repository (npm ci && npm run build), on a file system every node sees.
# The final query runs as a dependent job submitted by task 0; with no DuckDB CLI there, run the same SQL from
# Python (duckdb, polars) or read the dataset with Spark.
#SBATCH --job-name=parasweep
#SBATCH --array=0-15
#SBATCH --cpus-per-task=8
#SBATCH --mem=4G
#SBATCH --time=00:30:00
#SBATCH --output=parasweep-%A_%a.log
set -euo pipefail

SHARDS=$(( SLURM_ARRAY_TASK_MAX - SLURM_ARRAY_TASK_MIN + 1 ))
OUT=${OUT:-$PWD/sweep-$SLURM_ARRAY_JOB_ID}
mkdir -p "$OUT"

# A GPU node uses the GPU engine (--engine gpu); a CPU-only partition uses the CPU reference.
ENGINE=${ENGINE:-auto}

if [ "$SLURM_ARRAY_TASK_ID" -eq "$SLURM_ARRAY_TASK_MIN" ]; then
  # The top-K query, once every shard has succeeded.
  sbatch --dependency=afterok:"$SLURM_ARRAY_JOB_ID" --job-name=parasweep-top --output=parasweep-top-%j.log \
    --wrap "duckdb -c \"COPY (SELECT * FROM read_parquet('$OUT/**/*.parquet', hive_partitioning = true) WHERE fits
      QUALIFY row_number() OVER (PARTITION BY model, hardware, ngpus
        ORDER BY tokens_per_s DESC, tp, pp, cp, mbs, zero, recompute, sp, offload) <= 5
      ORDER BY model, hardware, ngpus, tokens_per_s DESC) TO '$OUT/top5.csv' (HEADER)\""
fi

npx parasweep sweep --model llama3.1-405b --ngpus 1..10240 --gbs 1024..4096:64 \
  --engine "$ENGINE" --quiet \
  --shard "$(( SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN ))/$SHARDS" \
  -o "$OUT/"
