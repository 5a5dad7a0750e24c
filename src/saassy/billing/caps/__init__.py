"""Spend caps: the most an organization lets itself be charged for overage in a month."""
