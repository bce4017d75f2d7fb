"""OpenConsult: self-hosted telemedicine video consultations."""
