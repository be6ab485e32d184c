"""Platform: settings, secrets (environment or Key Vault), storage clients, text made safe for people."""
