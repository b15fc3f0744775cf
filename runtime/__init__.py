"""Runtime wiring: settings, logging, client factories and the embedded stack."""
