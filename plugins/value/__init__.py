"""Value creation: stories members tell, indicators per cycle, the value report and page."""
