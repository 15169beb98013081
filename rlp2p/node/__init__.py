"""The embeddable node: a libp2p host, the Kademlia DHT, the CAS and NS protocols, a store."""
