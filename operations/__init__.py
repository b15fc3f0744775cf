"""What operators and parties do to internships: the calls the CLI, the API and the demo share."""
