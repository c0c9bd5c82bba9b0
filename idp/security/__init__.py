"""Security: passwords, rate limits, captcha, sessions, headers, MFA, audit."""
