"""The repertoire: the community's shared stories, tools, experiences and practices, kept and found again."""
