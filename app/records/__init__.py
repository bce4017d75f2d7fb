"""The patient record: consult notes (drafts, signing, addenda), their encryption, FHIR export."""
