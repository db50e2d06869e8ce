-- What a diagnosis needs to tell servers and dispatcher failures apart:
-- listen_address: where this server listens (HOST:PORT as bound), so that a doctor given
--   no address finds a live server, and one given a wrong address says where they are;
-- dispatcher_last_error(_at): the last dispatch cycle that failed, written by the server
--   (a crashing dispatcher is told apart from a stalled or a blocked one);
-- clock_skew_s: the server host's clock minus the database's, measured at each heartbeat
--   (every other time in the row is the database's now(), so skew is invisible in them).
ALTER TABLE server_status
    ADD COLUMN listen_address           text,
    ADD COLUMN dispatcher_last_error    text,
    ADD COLUMN dispatcher_last_error_at timestamptz,
    ADD COLUMN clock_skew_s             double precision;
