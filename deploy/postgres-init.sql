-- Rasa's conversations get a database of their own next to the CRM's (compose.yaml); Rasa creates its tables.
CREATE DATABASE rasa_tracker OWNER kefu;
