"""Personal data: an account's export and its deletion (GDPR articles 15, 17 and 20)."""
