ALTER TABLE access_files ADD IF NOT EXISTS PARTITION (`domain`='a.example.com', `dt`='2024-03-05', `hour`='08');
ALTER TABLE access_files ADD IF NOT EXISTS PARTITION (`domain`='a.example.com', `dt`='2024-03-05', `hour`='09');
