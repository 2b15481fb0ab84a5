/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "manager-pin-entry.h"

#include <string.h>

#include "i18n.h"

/* Wide enough for a token's longest usual PIN without growing. */
#define SHOWN_MIN_CHARS 12

struct _ManagerPinEntry {
	GtkWidget parent;
	Pin *pin; /* NULL until the first key */
	PangoLayout *dots;
};

G_DEFINE_FINAL_TYPE(ManagerPinEntry, manager_pin_entry, GTK_TYPE_WIDGET)

enum { SIGNAL_CHANGED, SIGNAL_ACTIVATE, N_SIGNALS };
static guint signals[N_SIGNALS];

static void update_dots(ManagerPinEntry *self)
{
	size_t n = self->pin ? self->pin->size : 0;
	GString *text = g_string_new(NULL);

	for (size_t i = 0; i < n; i++)
		g_string_append(text, "●");
	pango_layout_set_text(self->dots, text->str, -1);
	g_string_free(text, TRUE);
	gtk_widget_queue_draw(GTK_WIDGET(self));
}

static gboolean on_key(GtkEventControllerKey *controller, guint keyval, guint keycode,
		       GdkModifierType state, gpointer data)
{
	ManagerPinEntry *self = data;
	gunichar c;

	if (keyval == GDK_KEY_Return || keyval == GDK_KEY_KP_Enter || keyval == GDK_KEY_ISO_Enter) {
		g_signal_emit(self, signals[SIGNAL_ACTIVATE], 0);
		return TRUE;
	}
	if (keyval == GDK_KEY_BackSpace) {
		if (self->pin && self->pin->size > 0) {
			self->pin->data[--self->pin->size] = '\0';
			update_dots(self);
			g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
		}
		return TRUE;
	}
	/* Shortcuts (Ctrl+W, Alt+…) and Tab stay with the window. */
	if (state & (GDK_CONTROL_MASK | GDK_ALT_MASK | GDK_SUPER_MASK))
		return FALSE;
	c = gdk_keyval_to_unicode(keyval);
	/* Arrows, Tab, Escape: the window's. */
	if (c < 0x20)
		return FALSE;
	/* Tokens take printable ASCII; anything else is not a PIN
	 * character and is refused rather than sent in some encoding. */
	if (c > 0x7e) {
		gtk_widget_error_bell(GTK_WIDGET(self));
		return TRUE;
	}
	if (!self->pin && pin_new(&self->pin) < 0)
		return TRUE;
	if (self->pin->size + 1 >= PIN_MAX) {
		gtk_widget_error_bell(GTK_WIDGET(self));
		return TRUE;
	}
	self->pin->data[self->pin->size++] = (char)c;
	self->pin->data[self->pin->size] = '\0';
	update_dots(self);
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
	return TRUE;
}

static void on_pressed(GtkGestureClick *gesture, int n_press, double x, double y, gpointer data)
{
	gtk_widget_grab_focus(GTK_WIDGET(data));
}

static void manager_pin_entry_measure(GtkWidget *widget, GtkOrientation orientation, int for_size,
				      int *minimum, int *natural, int *minimum_baseline,
				      int *natural_baseline)
{
	ManagerPinEntry *self = MANAGER_PIN_ENTRY(widget);
	g_autoptr(PangoLayout) sample = gtk_widget_create_pango_layout(widget, "●");
	int width, height;

	pango_layout_get_pixel_size(sample, &width, &height);
	if (orientation == GTK_ORIENTATION_HORIZONTAL) {
		int shown;

		pango_layout_get_pixel_size(self->dots, &shown, NULL);
		*minimum = width * SHOWN_MIN_CHARS;
		*natural = MAX(*minimum, shown);
	} else {
		*minimum = *natural = height;
	}
}

static void manager_pin_entry_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
	ManagerPinEntry *self = MANAGER_PIN_ENTRY(widget);
	GdkRGBA color;
	int width, height;

	gtk_style_context_get_color(gtk_widget_get_style_context(widget), &color);
	pango_layout_get_pixel_size(self->dots, &width, &height);
	gtk_snapshot_save(snapshot);
	gtk_snapshot_translate(
	    snapshot, &GRAPHENE_POINT_INIT(0, (gtk_widget_get_height(widget) - height) / 2.f));
	gtk_snapshot_append_layout(snapshot, self->dots, &color);
	gtk_snapshot_restore(snapshot);
}

static void manager_pin_entry_dispose(GObject *object)
{
	ManagerPinEntry *self = MANAGER_PIN_ENTRY(object);

	self->pin = pin_free(self->pin);
	g_clear_object(&self->dots);
	G_OBJECT_CLASS(manager_pin_entry_parent_class)->dispose(object);
}

static void manager_pin_entry_class_init(ManagerPinEntryClass *klass)
{
	GObjectClass *object_class = G_OBJECT_CLASS(klass);
	GtkWidgetClass *widget_class = GTK_WIDGET_CLASS(klass);

	object_class->dispose = manager_pin_entry_dispose;
	widget_class->measure = manager_pin_entry_measure;
	widget_class->snapshot = manager_pin_entry_snapshot;
	/* Drawn as an entry by the theme: frame, padding, focus ring. */
	gtk_widget_class_set_css_name(widget_class, "entry");
	/* A text box with a name and nothing else: no Text interface. */
	gtk_widget_class_set_accessible_role(widget_class, GTK_ACCESSIBLE_ROLE_TEXT_BOX);
	signals[SIGNAL_CHANGED] =
	    g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 0);
	signals[SIGNAL_ACTIVATE] =
	    g_signal_new("activate", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
			 NULL, G_TYPE_NONE, 0);
}

static void manager_pin_entry_init(ManagerPinEntry *self)
{
	GtkWidget *widget = GTK_WIDGET(self);
	GtkEventController *keys = gtk_event_controller_key_new();
	GtkGesture *click = gtk_gesture_click_new();

	self->dots = gtk_widget_create_pango_layout(widget, "");
	gtk_widget_set_focusable(widget, TRUE);
	gtk_widget_set_can_focus(widget, TRUE);
	gtk_widget_set_cursor_from_name(widget, "text");
	g_signal_connect(keys, "key-pressed", G_CALLBACK(on_key), self);
	gtk_widget_add_controller(widget, keys);
	g_signal_connect(click, "pressed", G_CALLBACK(on_pressed), self);
	gtk_widget_add_controller(widget, GTK_EVENT_CONTROLLER(click));
}

GtkWidget *manager_pin_entry_new(const char *label)
{
	GtkWidget *widget = g_object_new(MANAGER_TYPE_PIN_ENTRY, NULL);

	gtk_accessible_update_property(GTK_ACCESSIBLE(widget), GTK_ACCESSIBLE_PROPERTY_LABEL, label,
				       GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
				       _("What you type is not shown nor read aloud."), -1);
	return widget;
}

size_t manager_pin_entry_get_length(ManagerPinEntry *self)
{
	return self->pin ? self->pin->size : 0;
}

gboolean manager_pin_entry_equal(ManagerPinEntry *a, ManagerPinEntry *b)
{
	size_t n = manager_pin_entry_get_length(a);
	unsigned char diff = 0;

	if (n != manager_pin_entry_get_length(b))
		return FALSE;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a->pin->data[i] ^ b->pin->data[i]);
	return diff == 0;
}

Pin *manager_pin_entry_take(ManagerPinEntry *self)
{
	Pin *pin = self->pin;

	if (!pin || pin->size == 0)
		return NULL;
	self->pin = NULL;
	update_dots(self);
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
	return pin;
}

void manager_pin_entry_clear(ManagerPinEntry *self)
{
	self->pin = pin_free(self->pin);
	update_dots(self);
	g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}
