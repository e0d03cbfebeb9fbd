-- A contact's reference is now the organisation it belongs to (`contact:<organisation id>`), so an organisation's
-- members are found through the reference index when its name changes. Contacts stored before keep '' there: their
-- references are computed again by the caller (NULL is what it fills in).
UPDATE records SET ref = NULL WHERE kind = 'contact'
