"""Every data source of the paper: fetched and hash-checked, or built (DDMNIST, TMNIST, SMOKE)."""
