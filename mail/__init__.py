"""E-mail: composing a message (MIME, templates, what each kind carries) and sending it."""
