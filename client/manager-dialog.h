/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gio/gunixfdlist.h>

#include "manager-pin-entry.h"
#include "manager.h"

/* What the window's dialogs share: a modal window of pages with a Cancel
 * and a primary button at the bottom, and the rules for a token's PIN
 * (lengths, final try, locked) as the window last read the token. */

typedef struct PinRules {
	unsigned min, max; /* max 0: the token does not say */
	bool locked, final_try, count_low;
} PinRules;

typedef struct DialogFrame DialogFrame;
struct DialogFrame {
	Manager *manager;
	GtkWindow *window; /* NULL once closed */
	GtkStack *stack;
	GtkWidget *cancel, *primary;

	/* A dialog of one call on a token (dialog_frame_run), the first
	 * member of its owner, freed with it. */
	char *path, *support; /* the token's object, the CA's support line */
	PinRules rules;
	char *first;		       /* what to type, first in the note */
	GtkLabel *note, *error;	       /* above the PIN fields, below them */
	GtkWidget *fields, *final_try; /* hidden while the token is locked */
	void (*act)(DialogFrame *f);   /* the primary button */
	bool (*ready)(DialogFrame *f); /* what was typed allows act */
	bool running;		       /* the call has not answered */
	bool done;		       /* the last page: the primary button closes */
};

/* A modal AdwWindow over the Manager's window, titled title, with an
 * empty stack of pages. The caller adds its pages and connects the
 * buttons' "clicked". */
void dialog_frame_init(DialogFrame *f, Manager *m, const char *title, int height);

/* Shows the page by name with the buttons labelled so; a NULL label
 * hides its button. Both buttons are left sensitive. */
void dialog_frame_show(DialogFrame *f, const char *page, const char *primary, const char *cancel);

/* A dialog that makes one call on the token (as the window last read
 * it): the primary button acts (f->act), Cancel and the window's close
 * button close it, except while the call runs; f is freed (g_free, with
 * what it holds) once the window is gone and no call runs. The caller
 * sets act, ready, first, note, error, fields and final_try. */
void dialog_frame_run(DialogFrame *f, json_t *token);
/* The usual way to start one: a frame titled title with page, whose
 * primary button (labelled primary) calls act once ready says yes;
 * shown. */
void dialog_frame_open(DialogFrame *f, Manager *m, json_t *token, const char *title,
		       GtkWidget *page, const char *primary, void (*act)(DialogFrame *f),
		       bool (*ready)(DialogFrame *f));
/* Below the PIN fields in box: the final try's check box and the line
 * for what went wrong (f->final_try, f->error). */
void dialog_frame_add_pin_end(DialogFrame *f, GtkWidget *box);
/* The note, the PIN fields and the buttons as the token stands. */
void dialog_frame_prepare(DialogFrame *f);
/* The buttons' sensitivity, after each key or tick. */
void dialog_frame_update(DialogFrame *f);
/* The primary button's act, where it is sensitive (Enter in a field). */
void dialog_frame_activate(DialogFrame *f);
/* Calls method on the token (with the PINs in fds; polkit may ask);
 * callback gets f. note says what is happening meanwhile. */
void dialog_frame_call(DialogFrame *f, const char *method, GVariant *parameters, GUnixFDList *fds,
		       int timeout_ms, GAsyncReadyCallback callback, const char *note);
/* In the callback, first: false when no one is there to read the answer
 * (the dialog was closed, or the window is going; the owner is then
 * freed). The window reads the tokens again either way. */
bool dialog_frame_answered(DialogFrame *f, const GError *error);
/* The last page: title, text, and Close. */
void dialog_frame_end(DialogFrame *f, const char *title, const char *text);
/* A failed call: back to the PIN with the daemon's words where the PIN
 * was the matter (wrong, its length, the final try), else the last page
 * with title. */
void dialog_frame_failed(DialogFrame *f, const GError *error, const char *title);

/* Puts child in the stack as name, in place of the page of that name. */
void dialog_frame_replace(DialogFrame *f, const char *name, GtkWidget *child);

/* A page: a vertical box with its title. */
GtkWidget *dialog_page_box(const char *title);
/* Wrapping text, left-aligned; css_class may be NULL. */
GtkWidget *dialog_label_new(const char *text, const char *css_class);
/* child in a box that scrolls up and down. */
GtkWidget *dialog_scrolled(GtkWidget *child);
/* A line for what went wrong, hidden while there is nothing to say. */
GtkLabel *dialog_error_new(void);
/* Says text there (NULL hides it). */
void dialog_say(GtkLabel *error, const char *text);
/* A page that ends a dialog: a title and a text. */
GtkWidget *dialog_end_page(const char *title, const char *text);

/* --- the PIN ---------------------------------------------------------- */

/* The rules from the token's PinStatus, PinMinLength, PinMaxLength. */
void pin_rules_read(PinRules *r, json_t *token);
bool pin_rules_length_ok(const PinRules *r, size_t length);
/* What the person reads above the PIN fields: first (what to type), then
 * a word on wrong tries; for a locked token, that nothing is tried, with
 * the CA's support line. */
char *pin_rules_note(const PinRules *r, const char *first, const char *support);

/* A labelled PIN field: the label shown and the accessible name are
 * label. Returns the row (a box); the field in ret_entry. */
GtkWidget *pin_field_new(const char *label, ManagerPinEntry **ret_entry);

/* The check box that allows the last try, hidden until shown. */
GtkWidget *final_try_check_new(void);
/* Shown and ticked: the call may use the last try. */
bool final_try_allowed(GtkWidget *check);
/* Shown and not ticked: nothing may be tried. */
bool final_try_blocks(GtkWidget *check);

/* Moves the PIN from entry into a pipe whose read end is appended to fds;
 * the PIN is wiped at once and the entry left empty. Returns the handle's
 * index, or -1 (nothing typed, or no pipe). */
int pin_entry_to_fd_list(ManagerPinEntry *entry, GUnixFDList *fds);

/* The daemon's message for an error about the PIN (wrong, its length,
 * the final try, locked), which sends the person back to the PIN, r
 * updated to how the token now stands; else NULL. */
char *pin_error_text(const GError *error, PinRules *r);
