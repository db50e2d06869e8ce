-- What a diagnosis needs to tell servers and dispatcher failures apart:
-- listen_address: where this server listens (HOST:PORT as bound), so that a doctor given
--   no address finds a live server, and one given a wrong address says where they are;
-- dispatcher_last_error(_at): the last dispatch cycle that failed, written by the server
--   (a crashing dispatcher is told apart from a stalled or a blocked one).
ALTER TABLE server_status
    ADD COLUMN listen_address           text,
    ADD COLUMN dispatcher_last_error    text,
    ADD COLUMN dispatcher_last_error_at timestamptz;
