"""Identity: users, their authentication, and single sign-on sessions."""
