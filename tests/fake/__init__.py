"""FakeKlaviyo and the pytest plugin: what apps test against."""
