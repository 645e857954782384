"""Welcome: greets newcomers in the community's welcome room and hands them to onboarding."""
