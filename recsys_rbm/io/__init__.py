"""Files and the process: checkpoints, atomic writes, output checks, input files, signals and resource limits."""
