#!/bin/bash
# Written by `python -m launcher sbatch`; resources first (sbatch reads #SBATCH lines up to the first command).
#SBATCH --job-name=exp1
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=/scratch/runs/slurm%%logs/slurm-%j.out
#SBATCH --error=/scratch/runs/slurm%%logs/slurm-%j.err
#SBATCH --signal=B:USR1@300
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --mail-type=END,FAIL
#SBATCH --exclusive

# setup (slurm.setup)
module load cuda/12.4
source ~/venv/bin/activate
export NCCL_DEBUG="WARN"  # as written

cd /work
# exec: srun becomes the batch shell, which SLURM's preemption notice reaches; it passes it on to every process of the step
exec srun --ntasks-per-node=1 python -m launcher /work/jobs/train.yaml --set data.batch_size=64 -- --lr 0.1
