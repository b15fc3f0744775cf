"""Issuing a credential: the plan as an Open Badges achievement, issuer ids, status-list places."""
