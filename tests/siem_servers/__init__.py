"""Real receivers on loopback for the SIEM export tests: a private rsyslogd from Debian's
package (rsyslog.py) and an HTTP(S) server speaking Splunk HEC's protocol (hec_server.py)."""
