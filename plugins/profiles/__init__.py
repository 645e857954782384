"""Profiles: the stakeholder map — onboarding, profiles, experts and introductions."""
