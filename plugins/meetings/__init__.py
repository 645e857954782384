"""Meetings: the community's roadmap of calls and visits, with RSVPs, reminders and a calendar feed."""
