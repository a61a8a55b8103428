-- The registrations' version. Every transaction that creates or deletes a registration
-- bumps it. A server keeps the node registrations in memory with the epoch it read them
-- at, and an SVID minted from that copy commits only if the epoch is still the current
-- one (checked in the transaction that appends its audit record): a registration deleted
-- on any replica stops every SVID that would commit after the delete.
CREATE TABLE registration_epoch (
    id    BIGINT PRIMARY KEY,
    epoch BIGINT NOT NULL
);
INSERT INTO registration_epoch (id, epoch) VALUES (1, 0);
