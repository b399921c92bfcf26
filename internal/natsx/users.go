package natsx

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/iochub/iochub/internal/subjects"
)

// Users of a NATS server that requires authentication (EmbeddedConfig.HubPassword).
const (
	// HubUser is the hub's own user: it may publish and subscribe on everything.
	HubUser = "hub"
	// ReaderUser is the read-only user handed to developers: it may follow
	// the streams FEEDS, STATE and ROLLUPS (ReaderPermissions) and nothing else.
	ReaderUser = "reader"
)

// ReaderStreams are the streams a reader may consume.
var ReaderStreams = []string{subjects.StreamFeeds, subjects.StreamState, subjects.StreamRollups}

// HubConsumers are the names of the durable consumers the hub itself keeps
// on the streams a reader may consume (the aggregator's on FEEDS; those on
// ACTIONS are out of a reader's reach), which a reader may neither create,
// update, pull from nor acknowledge on. A hub that configures other durable
// names (an aggregator per province) should run its readers in their own
// NATS account instead (docs/developers.md).
var HubConsumers = []string{"aggregator"}

// ReaderPermissions are the permissions of ReaderUser: subscribe to the
// hub's readable subjects (feeds, state, roll-ups, which include the alerts)
// and to its own inboxes; publish only the JetStream API requests a consumer
// needs (stream info, creating and pulling an ephemeral or ordered consumer
// on FEEDS, STATE or ROLLUPS, direct gets) and acknowledgements. Publishing
// on ioc.>, deleting or editing a stream, deleting a consumer and touching
// the hub's own consumers are refused by the server.
func ReaderPermissions() *server.Permissions {
	pub := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		"$JS.API.CONSUMER.MSG.NEXT.*.*",
		"$JS.ACK.>",
		"$JS.FC.>",
	}
	for _, s := range ReaderStreams {
		pub = append(pub,
			"$JS.API.STREAM.INFO."+s,
			"$JS.API.DIRECT.GET."+s,
			"$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.CONSUMER.CREATE."+s,
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.INFO."+s+".*",
		)
	}
	var deny []string
	for _, c := range HubConsumers {
		deny = append(deny,
			"$JS.API.CONSUMER.CREATE.*."+c,
			"$JS.API.CONSUMER.CREATE.*."+c+".>",
			"$JS.API.CONSUMER.MSG.NEXT.*."+c,
			"$JS.ACK.*."+c+".>",
		)
	}
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: pub, Deny: deny},
		Subscribe: &server.SubjectPermission{Allow: []string{
			subjects.FeedsAll, subjects.StateAll, subjects.RollupsAll, "_INBOX.>",
		}},
	}
}

// users returns the users of a server requiring authentication: the hub
// with every permission, and the reader when readerPassword is set.
func users(hubPassword, readerPassword string) []*server.User {
	out := []*server.User{{Username: HubUser, Password: hubPassword}}
	if readerPassword != "" {
		out = append(out, &server.User{Username: ReaderUser, Password: readerPassword, Permissions: ReaderPermissions()})
	}
	return out
}
