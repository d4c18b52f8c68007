#!/bin/bash
# Written by `python -m launcher sbatch`; resources first (sbatch reads #SBATCH lines up to the first command).
#SBATCH --job-name=train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=8
#SBATCH --partition=gpu
#SBATCH --time=1-00:00:00
#SBATCH --output=/work/jobs/slurm-%j.out
#SBATCH --error=/work/jobs/slurm-%j.err
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append

cd /work
# exec: srun becomes the batch shell, which SLURM's preemption notice reaches; it passes it on to every process of the step
exec srun --ntasks-per-node=4 --gpus-per-node=4 --cpus-per-task=8 python -m launcher /work/jobs/train.yaml --set data.batch_size=64 -- --lr 0.1
