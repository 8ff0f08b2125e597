"""The tutorial's five Verifiers environments, built into vft so that `environment.id =
"gsm8k"` needs no install line. Their sources live in the repository's `environments/`
folder (each also an installable package); the packaging maps them here."""
