"""What security officers watch: alerts, activity over time, ledger verification, witnesses."""
