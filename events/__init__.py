"""Events: workshops, office hours, registrations and iCalendar."""
