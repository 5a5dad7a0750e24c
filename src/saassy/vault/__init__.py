"""The vault: the one place sealed tenant data lives (named secrets now)."""
