package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/it0/it0/internal/comm"
)

const contactsUsage = `usage: it0 contacts list [--audience primary|backup|managers] [--json]
       it0 contacts add --name NAME --audience primary|backup|managers [--user-id ID] [--phone +E164] [--email A]
                        [--telegram CHAT_ID] [--wecom USER_ID] [--fcm-token T] [--locale zh-CN|en]
       it0 contacts test ID [--channel app|sms|voice|email|telegram|wecom|fcm]`

const escalationsUsage = `usage: it0 escalations list [--status active|answered|closed] [--json]`

// runContacts implements `it0 contacts list|add|test` against a running server (IT0_URL, IT0_TOKEN).
func runContacts(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{contactsUsage}
	}
	switch args[0] {
	case "list":
		return contactsList(ctx, args[1:], getenv, stdout, stderr)
	case "add":
		return contactsAdd(ctx, args[1:], getenv, stdout, stderr)
	case "test":
		return contactsTest(ctx, args[1:], getenv, stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown contacts command %q\n%s", args[0], contactsUsage)}
}

func contactsList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 contacts list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	audience := fs.String("audience", "", "only this audience: primary, backup or managers")
	asJSON := fs.Bool("json", false, "print the contacts as JSON")
	if help, err := parseSubFlags(fs, args); help || err != nil {
		return err
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	list, err := getItems[comm.Contact](ctx, c, "/api/v1/comm/contacts?audience="+url.QueryEscape(*audience))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tAUDIENCE\tPHONE\tEMAIL\tTELEGRAM\tWECOM\tUSER")
	for _, ct := range list {
		name := ct.Name
		if !ct.Enabled {
			name += " (disabled)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ct.ID, name, ct.Audience, dash(ct.Phone), dash(ct.Email), dash(ct.TelegramChatID),
			dash(ct.WeComUserID), dash(ct.UserID))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func contactsAdd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 contacts add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	body := map[string]*string{}
	for _, f := range []struct{ flag, field, help string }{
		{"name", "name", "the contact's name (required)"},
		{"audience", "audience", "primary, backup or managers (required)"},
		{"user-id", "user_id", "the tenant user who answers as this contact (needed to approve or reject)"},
		{"phone", "phone", "phone number in E.164, e.g. +8613800001111 (SMS and calls)"},
		{"email", "email", "email address"},
		{"telegram", "telegram_chat_id", "Telegram chat id"},
		{"wecom", "wecom_user_id", "WeCom user id"},
		{"fcm-token", "fcm_token", "FCM device registration token"},
		{"preferred", "preferred_channel", "preferred channel"},
		{"locale", "locale", "zh-CN or en (default: the tenant's)"},
	} {
		body[f.field] = fs.String(f.flag, "", f.help)
	}
	if help, err := parseSubFlags(fs, args); help || err != nil {
		return err
	}
	req := map[string]string{}
	for k, v := range body {
		if *v != "" {
			req[k] = *v
		}
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	var ct comm.Contact
	if err := c.call(ctx, "POST", "/api/v1/comm/contacts", req, &ct); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added contact %s (%s, %s)\n", ct.ID, ct.Name, ct.Audience)
	return nil
}

// contactsTest sends one test message to a contact on one channel (default: its preferred one) and prints
// the delivery status; a failed delivery is an error, so scripts can check a contact's reachability.
func contactsTest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("it0 contacts test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	channel := fs.String("channel", "", "the channel to test (default: the contact's preferred channel)")
	if help, err := parseSubFlags(fs, args); help || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"it0 contacts test needs exactly one contact id\n" + contactsUsage}
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	req := map[string]string{}
	if *channel != "" {
		req["channel"] = *channel
	}
	var m comm.Message
	if err := c.call(ctx, "POST", "/api/v1/comm/contacts/"+url.PathEscape(fs.Arg(0))+"/test", req, &m); err != nil {
		return err
	}
	if m.Status == comm.StatusFailed {
		return fmt.Errorf("test message to contact %s over %s failed: %s", fs.Arg(0), m.Channel, m.Error)
	}
	fmt.Fprintf(stdout, "test message %s over %s: %s\n", m.ID, m.Channel, m.Status)
	return nil
}

// runEscalations implements `it0 escalations list`.
func runEscalations(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError{escalationsUsage}
	}
	fs := flag.NewFlagSet("it0 escalations list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	status := fs.String("status", "", "only this status: active, answered or closed")
	asJSON := fs.Bool("json", false, "print the escalations as JSON")
	if help, err := parseSubFlags(fs, args[1:]); help || err != nil {
		return err
	}
	c, err := newAPIClient(getenv)
	if err != nil {
		return err
	}
	list, err := getItems[comm.Escalation](ctx, c, "/api/v1/comm/escalations?status="+url.QueryEscape(*status))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREF\tSEVERITY\tSTATUS\tSTARTED\tANSWER\tSUMMARY")
	for _, e := range list {
		answer := "-"
		if e.AnsweredAt != nil || e.Decision != "" {
			answer = e.Decision
			if e.AnsweredChannel != "" {
				answer += " via " + e.AnsweredChannel
			}
		}
		summary := []rune(e.Summary)
		if len(summary) > 60 {
			summary = append(summary[:59], '…')
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Ref, e.Severity, e.Status, e.StartedAt.Format("2006-01-02 15:04"), answer, string(summary))
	}
	return tw.Flush()
}

// runComm dispatches the comm commands.
func runComm(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if cmd == "contacts" {
		return runContacts(ctx, args, getenv, stdout, stderr)
	}
	return runEscalations(ctx, args, getenv, stdout, stderr)
}
