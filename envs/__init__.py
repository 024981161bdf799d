"""The env catalogue (catalogue.toml): one entry per registered id. Installed as `mn_gym.catalogue_data`."""
