"""Retirements, certificates (numbers, signing, PDF), public verification and the register."""
