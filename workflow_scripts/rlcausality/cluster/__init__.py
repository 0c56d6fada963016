"""What a GPU job sees and which GPU type it asks SLURM for."""
