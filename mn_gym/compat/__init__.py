"""Importers that turn other toolboxes' saved objects into mn_gym objects (`mn_gym.compat.motornet`: MotorNet 0.3.0)."""
