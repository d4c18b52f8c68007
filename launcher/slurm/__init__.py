"""SLURM beyond detection: the sbatch script, its submission, and requeue after a save-and-stop. Never imports torch."""
