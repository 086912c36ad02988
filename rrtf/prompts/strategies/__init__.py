"""One module per prompt strategy (discovered by rrtf.prompts.base.STRATEGIES)."""
